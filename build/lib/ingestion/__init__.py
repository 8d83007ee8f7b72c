"""Documents in, index out: loaders, chunker and the incremental index builder."""
