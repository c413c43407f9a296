"""Documents: PDFs uploaded through the API, checked, scanned and flattened on the way
in (pipeline), kept by SHA-256 (blobs), ordered per site (service), and published as a
site's release with a generated index page (release)."""
