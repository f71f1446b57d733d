"""Backend-agnostic numerical building blocks shared by every layer."""

from keras_ssm.ops import complex
from keras_ssm.ops.fft_conv import fft_conv
from keras_ssm.ops.fft_conv import next_fast_length
from keras_ssm.ops.fft_conv import two_sided_kernel
from keras_ssm.ops.scan import complex_linear_recurrence
from keras_ssm.ops.scan import linear_recurrence
from keras_ssm.ops.scan import log_linear_recurrence
from keras_ssm.ops.selective_scan import selective_scan
from keras_ssm.ops.ssd import ssd
from keras_ssm.ops.vandermonde import vandermonde_real
