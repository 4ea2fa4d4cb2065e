"""Drivers for AT-command modems, shared by the incoming and the outgoing side.

A LoRa module on a serial port is used both to receive sensor nodes point to point
(:mod:`frugalai.sources.lora_source`) and to send the gateway's own events over LoRaWAN
(:mod:`frugalai.uplink.lorawan`). The line dialogue (:mod:`~frugalai.modems.at_link`) and the
per-module drivers (:mod:`~frugalai.modems.lora_modems`) live here, below both, so neither side
imports the other. Reply parsing stays pure in :mod:`frugalai.protocols.at_modem`.
"""
