"""Analysis tools: frequency responses, continuity, temporal subsampling."""

from keras_ssm.analysis.continuity import model_continuity
from keras_ssm.analysis.continuity import task_continuity
from keras_ssm.analysis.subsampling import dt_scaled
from keras_ssm.analysis.subsampling import scale_dt
from keras_ssm.analysis.subsampling import temporal_subsample
from keras_ssm.analysis.transfer import spectral_centroid
from keras_ssm.analysis.transfer import transfer_function
