"""PURE streaming features: windows, rolling statistics, daily profiles, tide harmonics.

The same code runs at training time (over a recorded series) and on the gateway (one Reading at a
time), so what the model saw in training is what it sees in service.
"""
