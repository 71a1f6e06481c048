import pytest

from nnunetv2_alc.label_quality import (LabelQualityError, check_cases_tagged, read_label_quality,
                                        require_both_qualities, stratified_folds)


def test_reads_valid_tags():
    assert read_label_quality({"label_quality": {"a": "HQ", "b": "LQ"}}, "x.json") == {"a": "HQ", "b": "LQ"}


@pytest.mark.parametrize("content, fragment", [({}, "x.json has no 'label_quality' entry"),
                                               ({"label_quality": ["a"]}, "must map case identifiers"),
                                               ({"label_quality": {"a": "hq", "b": "LQ"}}, "'a': 'hq'")])
def test_bad_tags_are_explained(content, fragment):
    with pytest.raises(LabelQualityError, match=fragment) as info:
        read_label_quality(content, "x.json")
    assert "nnUNetv2_alc_tag" in str(info.value)


def test_untagged_cases_are_named():
    with pytest.raises(LabelQualityError, match="1 training case.*case_7"):
        check_cases_tagged({"case_1": "HQ"}, ["case_1", "case_7"], "dataset.json")


def test_both_qualities_required():
    with pytest.raises(LabelQualityError, match="no HQ case"):
        require_both_qualities(["a", "b"], {"a": "LQ", "b": "LQ"}, "fold 0")
    with pytest.raises(LabelQualityError, match="no LQ case"):
        require_both_qualities(["a"], {"a": "HQ"}, "fold 0")
    assert require_both_qualities(["a", "b"], {"a": "HQ", "b": "LQ"}, "fold 0") == (["a"], ["b"])


@pytest.mark.parametrize("num_hq, num_lq", [(2, 30), (5, 5), (8, 72), (3, 1)])
def test_folds_are_stratified_disjoint_and_complete(num_hq, num_lq):
    tags = {f"h{i}": "HQ" for i in range(num_hq)} | {f"l{i}": "LQ" for i in range(num_lq)}
    folds = stratified_folds(tags, tags, n_folds=5, seed=1)
    vals = [set(f["val"]) for f in folds]
    assert set().union(*vals) == set(tags) and sum(map(len, vals)) == len(tags)
    for fold in folds:
        assert set(fold["train"]) == set(tags) - set(fold["val"])
        hq_val = sum(tags[c] == "HQ" for c in fold["val"])
        assert hq_val <= -(-num_hq // 5)  # HQ spread evenly over the folds
        assert any(tags[c] == "HQ" for c in fold["train"])
    assert stratified_folds(tags, tags, seed=1) == folds
