"""Spectrally-normalized Keras layers (Farnia, Zhang and Tse, ICLR 2019)."""
