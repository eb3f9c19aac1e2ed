"""Send-side bandwidth estimation for one subscriber connection (issue 11).

GCC as in draft-ietf-rmcat-gcc-02: a delay-based estimate from TWCC feedback,
bounded by a loss-based one; REMB stands in for peers without TWCC. Pure:
callers pass the time in, so traces replay deterministically.
"""
