"""Converters that write the paper's datasets as nnU-Net v2 raw datasets with HQ/LQ tags.

* :mod:`dataset_conversion.convert_LA`: ``nnUNetv2_alc_convert_LA`` (2018 Left Atrium challenge).
* :mod:`dataset_conversion.convert_NIH`: ``nnUNetv2_alc_convert_NIH`` (NIH Pancreas-CT).
"""
