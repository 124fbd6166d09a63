"""Small HTTP/1.1 server shared by the emulator and the gateway."""
