"""Labelled real photos: end-to-end accuracy on them (`fer-edge bench photos`), and benchmark videos made of them."""
