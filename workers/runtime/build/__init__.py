"""The classic Docker builder, on Dockyard's own store and runtime (no Django).

Owner: helper G (see /work/notes/builds.md).
- dockerfile.py: parse (dockerfile-parse) into stages and instructions; Docker's variable
  substitution; ARG before and after FROM.
- context.py: a build context (tar, optionally compressed) unpacked safely into a directory;
  .dockerignore; content hashes of what COPY/ADD take.
- builder.py: Builder(store, host, options).build(context_dir) -> BuildResult.
"""
