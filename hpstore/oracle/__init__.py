"""The Oracle: KerasTuner's oracle contract on top of the store contract.

``base`` holds the class, ``opening`` how a project is created or resumed, ``space`` the
search space, ``deciding`` create_trial and the subclass API, ``ending`` end_trial,
``steering`` and ``warm`` enqueue, retire and warm starts, ``state`` get_state/set_state,
``trials`` trials as objects, ``values`` the identity of a set of values.
"""

from hpstore.oracle.base import Oracle, synchronized
from hpstore.oracle.deciding import MAX_INTERRUPTIONS, DecisionContext
from hpstore.oracle.values import completes, values_key

__all__ = ["MAX_INTERRUPTIONS", "DecisionContext", "Oracle", "completes", "synchronized",
           "values_key"]
