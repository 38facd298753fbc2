// Scene: procedural materials, sun + shadow map, street lamps, wet ground, fog.
#ifdef VERTEX_SHADER
in vec3 in_pos; in vec3 in_nrm; in vec3 in_col; in vec2 in_uv; in float in_mat; in vec4 in_prm;
uniform mat4 mvp;
uniform mat4 light_mvp;
out vec3 v_pos; out vec3 v_nrm; out vec3 v_col; out vec2 v_uv; out vec4 v_shadow;
invariant gl_Position;  // must match the depth pre-pass (shadow.glsl) bit for bit
flat out float v_mat; flat out vec4 v_prm;
void main() {
    v_pos = in_pos; v_nrm = in_nrm; v_col = in_col; v_uv = in_uv; v_mat = in_mat; v_prm = in_prm;
    v_shadow = light_mvp * vec4(in_pos, 1.0);
    gl_Position = mvp * vec4(in_pos, 1.0);
}
#endif
#ifdef FRAGMENT_SHADER
in vec3 v_pos; in vec3 v_nrm; in vec3 v_col; in vec2 v_uv; in vec4 v_shadow;
flat in float v_mat; flat in vec4 v_prm;
out vec4 f_color;
uniform vec3 cam_pos;
uniform float ambient;
uniform float fog_density;
uniform float far_dist;
uniform float wet;
uniform float exposure;
uniform float use_shadow;
uniform sampler2DShadow shadow_map;
uniform int n_lamps;
uniform vec3 lamps[8];

vec3 tonemap(vec3 c) { return 1.0 - exp(-1.6 * c * exposure); }

struct Surf { vec3 albedo; vec3 emit; float glass; float shine; };

Surf facade(vec3 base, vec2 uv, vec4 prm) {
    Surf s = Surf(base, vec3(0.0), 0.0, 0.0);
    float seed = prm.x, sx = prm.y, sy = prm.z;
    float style = floor(prm.w / 100.0), height = mod(prm.w, 100.0);
    vec2 cell = floor(vec2(uv.x / sx, uv.y / sy));
    vec2 f = fract(vec2(uv.x / sx, uv.y / sy));
    float h1 = hash12(vec2(seed * 91.0, 3.0)), h2 = hash12(vec2(seed * 57.0, 9.0));
    vec3 c = base * (0.88 + 0.2 * fbm(uv * vec2(0.4, 0.25) + seed * 40.0));
    if (style == 1.0) {  // brick courses
        vec2 b = vec2(uv.x / 0.5 + 0.5 * mod(floor(uv.y / 0.22), 2.0), uv.y / 0.22);
        float mortar = step(0.9, fract(b.x)) + step(0.85, fract(b.y));
        c *= mix(0.85 + 0.25 * hash12(floor(b) + seed), 1.35, clamp(mortar, 0.0, 1.0));
    } else if (style == 2.0) {  // horizontal concrete bands
        c *= 0.8 + 0.35 * step(0.7, fract(uv.y / sy + 0.15));
    } else if (style == 4.0) {  // landmark: coloured bands
        c = mix(c, c.bgr * 0.9 + 0.1, step(0.5, fract(uv.y / (sy * 3.0))));
    }
    if (uv.y > height - 0.8) { s.albedo = c * 0.65; return s; }  // cornice
    float ww = mix(0.35, 0.7, h1), wh = mix(0.4, 0.65, h2);
    if (style == 3.0) { ww = 0.88; wh = 0.8; }
    if (style == 4.0) { ww = 0.25; wh = 0.7; }
    bool win = abs(f.x - 0.5) < ww * 0.5 && abs(f.y - 0.55) < wh * 0.5;
    bool frame = abs(f.x - 0.5) < ww * 0.5 + 0.05 && abs(f.y - 0.55) < wh * 0.5 + 0.04;
    if (cell.y < 1.0 && style != 4.0) {  // ground floor: shop fronts with an awning stripe
        float shop = hash12(vec2(floor(uv.x / (2.0 * sx)), seed * 13.0));
        vec3 awn = vec3(hash12(vec2(shop, 1.0)), hash12(vec2(shop, 2.0)), hash12(vec2(shop, 3.0)));
        win = fract(uv.x / (2.0 * sx)) > 0.12 && uv.y > 0.4 && uv.y < sy * 0.72;
        frame = uv.y > sy * 0.72 && uv.y < sy * 0.9;
        if (frame) { s.albedo = awn * 0.9; return s; }
        if (win) {  // shop window: mullions, a lit interior with shelves at night
            float mull = step(0.94, fract(uv.x / 1.3));
            float shelf = 0.6 + 0.4 * step(0.5, fract(uv.y / 0.45)) * vnoise(uv * vec2(3.0, 1.0));
            s.albedo = mull > 0.0 ? awn * 0.3 : vec3(0.05, 0.06, 0.07);
            s.glass = 0.6 * (1.0 - mull);
            s.emit = night * mix(vec3(1.0, 0.8, 0.55), awn, 0.3) * step(0.35, shop) * 0.9
                     * shelf * (1.0 - mull);
            return s;
        }
        s.albedo = c * 0.85; return s;
    }
    if (win) {
        s.albedo = vec3(0.06, 0.08, 0.10); s.glass = 0.8;
        float lit = hash12(cell + seed * 311.0);
        vec3 warm = mix(vec3(1.0, 0.75, 0.45), vec3(0.75, 0.85, 1.0), hash12(cell + 7.0 + seed));
        s.emit = night * warm * step(0.55, lit) * (0.6 + 0.4 * lit);
        return s;
    }
    s.albedo = frame ? mix(c, vec3(0.85), 0.5) : c;
    return s;
}

Surf sign_surf(vec3 col, vec2 uv, vec4 prm) {
    vec2 p = uv * 2.0 - 1.0;
    float shape = prm.x, inside;
    if (shape == 1.0) inside = 1.0 - length(p);
    else if (shape == 2.0) inside = min(p.y + 1.0, (1.0 - p.y - 2.0 * abs(p.x)) * 0.447);
    else if (shape == 3.0) inside = (1.0 - abs(p.x) - abs(p.y)) * 0.707;
    else inside = 1.0 - max(abs(p.x), abs(p.y));  // the outline is geometry: no discard
    vec3 c = inside < 0.12 ? vec3(0.95) : col;
    vec2 g = floor(vec2(uv.x * 6.0 * prm.z, uv.y * 3.0));  // glyph-like blocks, unique per sign
    if (inside > 0.2 && hash12(g + prm.y * 100.0) > 0.55 && abs(p.y) < 0.45) c = vec3(0.95) - col * 0.6;
    return Surf(c, c * (0.15 + 1.2 * night), 0.0, 0.3);
}

void main() {
    vec3 N = normalize(v_nrm);
    vec3 V = normalize(cam_pos - v_pos);
    float dist = length(cam_pos - v_pos);
    Surf s = Surf(v_col, vec3(0.0), 0.0, 0.0);
    bool ground = v_mat < 1.5;
    if (v_mat < 0.5) {          // paving
        vec2 t = v_pos.xy / 0.6;
        float joint = step(0.92, max(fract(t.x), fract(t.y)));
        s.albedo = vec3(0.52, 0.51, 0.49) * (0.9 + 0.15 * hash12(floor(t))) * (1.0 - 0.3 * joint);
        s.albedo *= 0.8 + 0.35 * fbm(v_pos.xy * 0.15);
    } else if (v_mat < 1.5) {   // asphalt with markings; uv = (along, lateral), prm = (length, half)
        float len = v_prm.x, half_w = v_prm.y;
        s.albedo = vec3(0.2, 0.2, 0.21) * (0.8 + 0.4 * fbm(v_pos.xy * 0.7));
        bool inner = v_uv.x > half_w * 1.6 && v_uv.x < len - half_w * 1.6;
        bool dash = abs(v_uv.y) < 0.1 && fract(v_uv.x / 6.0) < 0.5;
        bool edge = abs(abs(v_uv.y) - half_w + 0.35) < 0.08;
        bool zebra = (abs(v_uv.x - half_w * 1.25) < half_w * 0.3 || abs(v_uv.x - len + half_w * 1.25) < half_w * 0.3)
                     && fract(v_uv.y / 1.1) < 0.5;
        if ((inner && (dash || edge)) || zebra) s.albedo = vec3(0.8, 0.8, 0.75);
    } else if (v_mat < 2.5) {
        s = facade(v_col, v_uv, v_prm);
    } else if (v_mat < 3.5) {
        s.albedo = v_col * 0.45 * (0.8 + 0.4 * fbm(v_pos.xy * 0.3));
        s.albedo *= 0.85 + 0.15 * step(0.5, fract(v_uv.y / 0.35));  // tile courses
    } else if (v_mat < 4.5) {
        s = sign_surf(v_col, v_uv, v_prm);
    } else if (v_mat < 5.5) {
        s.albedo = v_col * (0.55 + 0.8 * vnoise(v_pos.xy * 3.0 + v_pos.z * 2.0));
    } else if (v_mat < 6.5) {
        s.albedo = v_col;
    } else if (v_mat < 7.5) {
        s.albedo = v_col; s.emit = vec3(3.0, 2.4, 1.6) * night;
    } else {
        s.albedo = v_col;
        if (v_prm.x == 1.0 && abs(N.z) < 0.5) { s.albedo = vec3(0.05, 0.07, 0.09); s.glass = 0.7; }
    }
    float shadow = 1.0;
    if (use_shadow > 0.5) {
        vec3 sc = v_shadow.xyz / v_shadow.w * 0.5 + 0.5;
        if (all(greaterThan(sc, vec3(0.0))) && all(lessThan(sc, vec3(1.0))))
            shadow = texture(shadow_map, vec3(sc.xy, sc.z - 0.002));
    }
    if (ground) s.albedo *= 1.0 - 0.45 * wet;
    vec3 hemi = mix(sky_horizon * 0.5, mix(sky_zenith, sky_horizon, 0.5), N.z * 0.5 + 0.5);
    vec3 light = hemi * ambient * 1.6 + sun_color * sun_strength * max(dot(N, sun_dir), 0.0) * shadow;
    vec3 spec = vec3(0.0);
    for (int i = 0; i < n_lamps; i++) {
        vec3 L = lamps[i] - v_pos;
        float d2 = dot(L, L);
        L = normalize(L);
        float att = night * 1.8 / (1.0 + d2 * 0.09);
        light += vec3(1.0, 0.8, 0.55) * att * max(dot(N, L), 0.0);
        if (ground) spec += vec3(1.0, 0.8, 0.55) * att * wet * pow(max(dot(reflect(-L, N), V), 0.0), 40.0) * 4.0;
    }
    vec3 col = s.albedo * light + s.emit + spec;
    float refl = max(s.glass, ground ? wet * 0.55 : 0.0);
    if (refl > 0.0) {
        vec3 R = reflect(-V, N);
        float fres = refl * (0.25 + 0.75 * pow(1.0 - max(dot(N, V), 0.0), 3.0));
        col = mix(col, sky_gradient(R), fres);
    }
    float fog = 1.0 - exp(-fog_density * dist);
    fog = max(fog, smoothstep(far_dist * 0.55, far_dist * 0.95, dist));
    col = mix(col, sky_gradient(normalize(vec3(-V.xy, 0.02))), fog);
    f_color = vec4(tonemap(col), 1.0);
}
#endif
