"""One-off studies behind decisions recorded in the model cards; not part of the product (see README.md)."""
