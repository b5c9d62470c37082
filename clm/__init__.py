"""The `clm` command and the local stack: tools around the app, never shipped in its Lambda zip."""
