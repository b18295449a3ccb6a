"""Microsoft Teams edge: botbuilder adapter, Adaptive Cards, proactive sends (the only botbuilder user)."""
