"""call_service sends a read-only request again when the first answer is lost."""
import pytest

from vpr_ros.graph.service_call import call_service


class _Future:
    def __init__(self, result=None):
        self._result = result

    def done(self):
        return self._result is not None

    def result(self):
        return self._result


class _LosesFirstAnswer:
    """A client whose first request is never answered (the answer DDS dropped)."""
    srv_name = '/vpr/get_map_info'

    def __init__(self):
        self.sent = 0

    def wait_for_service(self, timeout_sec):
        return True

    def call_async(self, request):
        self.sent += 1
        return _Future(None if self.sent == 1 else f'answer to {request}')


def test_resend_recovers_a_lost_answer():
    client = _LosesFirstAnswer()
    assert call_service(client, 'req', timeout=5, resend=True, resend_after=0.05) == \
        'answer to req'
    assert client.sent == 2


def test_without_resend_a_lost_answer_times_out_with_a_clear_error():
    client = _LosesFirstAnswer()
    with pytest.raises(TimeoutError, match=r'get_map_info: no answer in 0 s \(1 request'):
        call_service(client, 'req', timeout=0.2, resend=False, resend_after=0.05)
    assert client.sent == 1
