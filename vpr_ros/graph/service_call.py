"""Service calls from a node whose executor spins in another thread, robust to a lost answer.

A service can be "available" (its request reader is matched) before its response writer has
matched a new client's reader; DDS then drops that first answer. Requests that change nothing
(or carry an id the server applies once) are therefore sent again until one answer arrives.
"""
from __future__ import annotations

import time

RESEND_AFTER_S = 5.0


def call_service(client, request, timeout: float = 30.0, resend: bool = False,
                 resend_after: float = RESEND_AFTER_S):
    """Send ``request`` on ``client`` and return the first response; TimeoutError (naming the
    service and how many requests were sent) when none arrives within ``timeout`` seconds.
    With ``resend``, the request is sent again every ``resend_after`` seconds."""
    deadline = time.monotonic() + timeout
    while not client.wait_for_service(timeout_sec=0.2):
        if time.monotonic() > deadline:
            raise TimeoutError(f'{client.srv_name}: service not available after '
                               f'{timeout:.0f} s')
    futures = [client.call_async(request)]
    next_send = time.monotonic() + resend_after
    while True:
        done = next((f for f in futures if f.done()), None)
        if done is not None:
            return done.result()
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f'{client.srv_name}: no answer in {timeout:.0f} s '
                               f'({len(futures)} request(s) sent)')
        if resend and now > next_send:
            futures.append(client.call_async(request))
            next_send = now + resend_after
        time.sleep(0.01)
