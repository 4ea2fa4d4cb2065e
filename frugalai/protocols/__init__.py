"""Pure byte codecs: no I/O, no clocks. Each decoder is fed bytes and yields frames."""
