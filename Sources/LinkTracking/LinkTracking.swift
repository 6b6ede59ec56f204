/// LinkTracking: signed link tokens, the key ring, message rewriting and the click
/// event codec (issue 3). This module is pure: it touches no files or sockets.
///
/// Nothing is implemented here yet; the module exists so that the layout of
/// ../shared/DESIGN.md is fixed from the start.
public enum LinkTracking {}
