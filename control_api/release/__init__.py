"""Build-time tooling for the signed offline release bundle."""
