"""Readers and writers, one module per format: `read_<fmt>` / `write_<fmt>` over pure converters."""
