"""The parties' data: per-centre train/test split (``split``), the centres' local
subsamples (``local``), uniformly split parties (``uniform``), the skewed party of Fig 5
(``skew``) and the one-row-per-party summary (``summary``)."""
