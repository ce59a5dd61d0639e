"""Integrations with libraries that make Azure OpenAI calls through their own HTTP clients.

Each integration lives in its own module and imports its library lazily, so
``import meter`` never imports them: ``meter.integrations.litellm`` for LiteLLM.
"""
