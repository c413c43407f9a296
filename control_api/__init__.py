"""The WECO control API: settings, store, authentication, authorization and resources."""
