//! # gantry-datasets
//!
//! Loaders for MNIST-style IDX files, CIFAR-10, image folders and aligned pairs, synthetic 2-D
//! mixtures, batching and augmentation. (Being built: see the project issues.)
