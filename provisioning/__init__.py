"""Device identity: keys made on the kiosk, certificates, renewal."""
