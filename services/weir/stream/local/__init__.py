"""The local backend: an on-disk, in-process log for the embedded default (`weir dev`).

`segment` frames records in one file per partition, `log` groups fsyncs and wakes readers,
`group` assigns partitions and keeps committed offsets; `producer` and `consumer` implement
`weir.stream.base`'s protocols over them.
"""
