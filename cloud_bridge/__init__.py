"""The office side: request intake, signing, archive, verification and fleet."""
