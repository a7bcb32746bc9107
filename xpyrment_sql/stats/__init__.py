"""Pure statistics on small numpy arrays: no SQL, no Ibis, no I/O."""
