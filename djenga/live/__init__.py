"""Live side of djenga: the pub/sub relay hub, the WebSocket consumer, tokens and the JSON view."""
