/** Pow with numpy broadcasting (LayerNorm exported as primitives squares with Pow(x, 2)). */
import * as tf from '../../tf.js';
import { binary } from './elementwise.js';

export const pow = binary((a, b) => tf.pow(a, b.dtype === a.dtype ? b : tf.cast(b, a.dtype)));
