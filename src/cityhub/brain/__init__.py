"""The city brain: signal controllers, the signal safety layer and the congestion index.

Pure domain code (stdlib and numpy only): no simulator, no HTTP. The SUMO twin (`cityhub.sandbox`)
and the live hub loop feed the same observations in and apply the same decisions.
"""
