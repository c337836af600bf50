"""The trainer's ImageFolder hold-out (data/split.cpp), for the Python scripts that score or split the same
photos: an image is held out when the FNV-1a hash of its path relative to the folder ("CLASS/FILE"), modulo
10,000, is below holdout x 10,000. Plain Python, no torch: bench/realphotos/category_retrieval.py imports it
too. tests/test_category_retrieval.cpp checks it against data::holdout_indices."""


def fnv1a(s):  # data/split.cpp hash_name
    h = 1469598103934665603
    for c in s.encode("utf-8"):
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def held_out(path, holdout):
    return fnv1a(path) % 10000 < holdout * 10000
