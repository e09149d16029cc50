"""The validator: commitments in, verified unique tweets counted, weights out."""
