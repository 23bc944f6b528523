// Placeholder: the converter's readers and writers.
