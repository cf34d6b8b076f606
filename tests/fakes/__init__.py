"""Local stand-ins for outside services, served on loopback so tests never touch the internet."""
