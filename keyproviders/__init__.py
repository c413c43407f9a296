"""MASTER_SECRET key providers (file:, env-cmd:, vault:, aws-kms:, gcp-kms:); not built yet."""
