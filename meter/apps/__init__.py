"""Applications built on meter's public API: the Azure emulator, the metering proxy, the demo."""
