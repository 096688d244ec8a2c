/**
 * TensorFlow.js for the whole tool. The union package's node bundle registers the chained tensor
 * methods (x.reshape(...)) and every op gradient; tfjs-core alone registers neither under Node.
 */
export * from '@tensorflow/tfjs';
