"""Images: simulated DECam stacks of SMASH field 169 (synth.py), rendered from smash_sim on
request, found by SIA 1.0 (sia.py) and cut out by Data Lab's cutout service (cutout.py)."""
