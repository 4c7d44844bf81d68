"""Building blocks of the BiRefNet decoder."""
