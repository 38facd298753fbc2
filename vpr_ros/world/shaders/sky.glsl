// Sky: a full-screen triangle; the view ray comes from the inverse view-projection.
#ifdef VERTEX_SHADER
out vec2 v_ndc;
void main() {
    vec2 p = vec2((gl_VertexID << 1) & 2, gl_VertexID & 2) * 2.0 - 1.0;
    v_ndc = p;
    gl_Position = vec4(p, 1.0, 1.0);
}
#endif
#ifdef FRAGMENT_SHADER
in vec2 v_ndc;
out vec4 f_color;
uniform mat4 inv_viewproj;
uniform float exposure;
vec3 tonemap(vec3 c) { return 1.0 - exp(-1.6 * c * exposure); }
void main() {
    vec4 a = inv_viewproj * vec4(v_ndc, -1.0, 1.0);
    vec4 b = inv_viewproj * vec4(v_ndc, 1.0, 1.0);
    vec3 d = normalize(b.xyz / b.w - a.xyz / a.w);
    f_color = vec4(tonemap(sky_color(d, true)), 1.0);
}
#endif
