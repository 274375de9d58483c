"""Local stand-ins for the remote services the platform talks to (Twilio, Zalo), following their wire protocols."""
