"""The restore gate: requests share it, a restore waits for them and then passes alone."""
import threading
import time

from peestore.db._gate import Gate


def test_exclusive_waits_for_shared_holders_and_blocks_new_ones():
    gate = Gate()
    events = []
    gate.enter_shared()

    def restore():
        with gate.exclusive():
            events.append("swap")
            time.sleep(0.05)
            events.append("swapped")

    def late_request():
        gate.enter_shared()
        events.append("late request")
        gate.leave_shared()

    swap = threading.Thread(target=restore)
    swap.start()
    time.sleep(0.05)
    assert events == []  # the restore waits for the request that holds the gate
    late = threading.Thread(target=late_request)
    late.start()
    time.sleep(0.05)
    assert events == []  # a new request waits behind the waiting restore
    gate.leave_shared()
    swap.join(2)
    late.join(2)
    assert events == ["swap", "swapped", "late request"]


def test_a_holder_may_reenter_and_the_exclusive_owner_passes():
    gate = Gate()
    gate.enter_shared()
    gate.enter_shared()  # nested: a request inside a request
    gate.leave_shared()
    gate.leave_shared()
    with gate.exclusive():
        gate.enter_shared()  # the restore's own request wrapper
        gate.leave_shared()
        with gate.shared():
            pass
    assert gate._shared == 0 and not gate._exclusive
