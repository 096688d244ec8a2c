/** PRelu: x above 0, slope * x below, the slope (a trainable weight) broadcast per channel or shared. */
import * as tf from '../../tf.js';
import { binary } from './elementwise.js';

// relu(x) - slope * relu(-x): no comparison op, which tfjs cannot differentiate.
export const prelu = binary((x, slope) => tf.sub(tf.relu(x), tf.mul(slope, tf.relu(tf.neg(x)))));
