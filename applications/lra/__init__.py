"""Long Range Arena classification with keras-ssm: the command line.

The models, presets and data sets are the library's:

```python
import keras_ssm

model = keras_ssm.models.SSMClassifier.from_preset("s4d_listops_cpu")
train, val, test = keras_ssm.datasets.listops.load_data()
```

and this folder trains them from the command line:

    python -m applications.lra --task listops --model etsmlp_gate --preset cpu
"""
