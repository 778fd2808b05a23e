"""Files in, validated: landing -> quarantine -> a canonical, validated delivery (or a rejection)."""
