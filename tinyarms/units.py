"""Units of size and time, named once: ``n / MIB`` says what ``n / (1 << 20)`` makes you work out."""

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
MINUTE = 60  # seconds
HOUR = 3600  # seconds
