// Depth-only pass: from the sun (shadow map) and from the camera (depth pre-pass).
#ifdef VERTEX_SHADER
in vec3 in_pos;
invariant gl_Position;
uniform mat4 light_mvp;
void main() { gl_Position = light_mvp * vec4(in_pos, 1.0); }
#endif
#ifdef FRAGMENT_SHADER
void main() {}
#endif
