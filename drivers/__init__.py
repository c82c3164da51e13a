"""The only package that talks to hardware: real and simulated devices."""
