"""Data parallelism over devices and processes, on every backend.

```python
from keras_ssm import distribute

distribute.initialize()  # joins the other processes, if any
with distribute.data_parallel_scope():
    model = build_model()
    model.compile(optimizer="adam", loss="mse")
    distribute.prepare_model(model)
    model.fit(x, y, batch_size=64)  # the global batch
if distribute.is_chief():
    model.save("model.keras")
```

Launch one process per device (PyTorch) or per machine (JAX, TensorFlow):
`torchrun` for PyTorch, `JAX_COORDINATOR_ADDRESS` / `JAX_NUM_PROCESSES` /
`JAX_PROCESS_ID` for JAX, `TF_CONFIG` for TensorFlow. In a lone process the
scope spreads over the local devices (JAX and TensorFlow).
"""

from keras_ssm.distribute.api import data_parallel_scope
from keras_ssm.distribute.api import initialize
from keras_ssm.distribute.api import is_chief
from keras_ssm.distribute.api import prepare_model
from keras_ssm.distribute.api import process_count
from keras_ssm.distribute.api import process_index
from keras_ssm.distribute.local import TORCH_HELP
from keras_ssm.distribute.local import local_devices
from keras_ssm.distribute.local import simulate_host_devices
from keras_ssm.distribute.sharding import ShardedBatches
