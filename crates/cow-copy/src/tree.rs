//! Tree copy (being built by the tree helper).
